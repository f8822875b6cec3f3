/* errors.c - placeholder until its owner lands it */
