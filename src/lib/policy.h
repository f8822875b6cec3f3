/* policy.h - placeholder until its owner lands it */
