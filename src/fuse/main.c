/* main.c - placeholder until its owner lands it */
#include <stdio.h>
int main(void) { fputs("not built yet\n", stderr); return 2; }
