/* cmd_extract.c - placeholder until its owner lands it */
