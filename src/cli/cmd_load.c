/* cmd_load.c - placeholder until its owner lands it */
