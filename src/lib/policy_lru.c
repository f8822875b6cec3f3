/* policy_lru.c - placeholder until its owner lands it */
