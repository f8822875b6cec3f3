/* cmd_info.c - placeholder until its owner lands it */
