/* format_write.c - placeholder until its owner lands it */
