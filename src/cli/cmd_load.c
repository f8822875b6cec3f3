/*
 * cmd_load.c - `apbundle load`: interim stub until the PagedBundle
 * (src/lib/paged.c) lands; the real command replaces it then.
 */
#include "cli.h"

/** `apbundle load`: not available until the paging cache is built. */
int cli_cmd_load(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	cli_msg("the paging cache is not built yet");
	return CLI_BAD;
}
