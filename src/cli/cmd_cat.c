/* cmd_cat.c - placeholder until its owner lands it */
