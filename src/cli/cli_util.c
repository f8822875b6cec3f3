/* cli_util.c - placeholder until its owner lands it */
