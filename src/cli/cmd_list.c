/* cmd_list.c - placeholder until its owner lands it */
