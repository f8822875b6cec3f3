/*
 * apbundle.c - the apbundle command: dispatch to a subcommand, --help,
 * --version.
 *
 * Invariants: each subcommand gets argv starting at its own name and does
 * its own option parsing (getopt_long, options before or after operands);
 * the exit status is always CLI_OK (0), CLI_BAD (1) or CLI_USAGE (2);
 * stdout is flushed and checked before exit so a full disk or closed pipe
 * on stdout is reported as an error instead of being lost.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

typedef struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} command;

static const command commands[] = {
	{ "create",  cli_cmd_create,  "build a bundle from files or a directory" },
	{ "list",    cli_cmd_list,    "list the models of a bundle" },
	{ "info",    cli_cmd_info,    "show a bundle's layout and settings" },
	{ "verify",  cli_cmd_verify,  "check structure and every checksum" },
	{ "extract", cli_cmd_extract, "write models out as files" },
	{ "cat",     cli_cmd_cat,     "write one model's bytes to stdout" },
	{ "load",    cli_cmd_load,    "read models through the paging cache, print statistics" },
	{ "simulate", cli_cmd_simulate, "replay a page-lookup trace through every eviction policy" },
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fputs("Usage: apbundle COMMAND [OPTION]... [ARG]...\n"
	      "       apbundle --help | --version\n"
	      "Pack many ML models into one .apbundle file and serve them under a\n"
	      "memory budget.\n\nCommands:\n", f);
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
	fputs("\n'apbundle COMMAND --help' describes a command's options.\n"
	      "Exit status: 0 success, 1 bad data (invalid or corrupt bundle, checksum\n"
	      "failure, I/O error), 2 usage error.  See apbundle(1).\n", f);
}

static void version(void)
{
	printf("apbundle %s (libapbundle %s, format version %d)\n",
	       APB_VERSION_STRING, apb_version(), APB_FORMAT_VERSION);
}

/* Flushes stdout; a write error there turns success into CLI_BAD. */
static int finish(int status)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		if (errno != EPIPE)
			cli_msg("error writing to standard output: %s", strerror(errno));
		return status == CLI_OK ? CLI_BAD : status;
	}
	return status;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	if (!cmd)
		return cli_usage_error("missing command (create, list, info, verify, "
		                       "extract, cat or load)");
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		if (strcmp(cmd, "help") == 0 && argc > 2) {
			char *hargv[] = { argv[2], "--help", NULL };
			for (size_t i = 0; i < N_COMMANDS; i++)
				if (strcmp(argv[2], commands[i].name) == 0) {
					cli_set_command(commands[i].name);
					return finish(commands[i].run(2, hargv));
				}
			return cli_usage_error("unknown command '%s'", cli_esc(argv[2]));
		}
		usage(stdout);
		return finish(CLI_OK);
	}
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
		version();
		return finish(CLI_OK);
	}
	for (size_t i = 0; i < N_COMMANDS; i++) {
		if (strcmp(cmd, commands[i].name) == 0) {
			cli_set_command(commands[i].name);
			return finish(commands[i].run(argc - 1, argv + 1));
		}
	}
	if (cmd[0] == '-')
		return cli_usage_error("unknown option '%s'", cli_esc(cmd));
	return cli_usage_error("unknown command '%s'", cli_esc(cmd));
}
