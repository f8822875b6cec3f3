/* cmd_verify.c - placeholder until its owner lands it */
