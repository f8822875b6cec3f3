/* policy_lfu.c - placeholder until its owner lands it */
