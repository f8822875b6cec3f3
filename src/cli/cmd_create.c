/* cmd_create.c - placeholder until its owner lands it */
