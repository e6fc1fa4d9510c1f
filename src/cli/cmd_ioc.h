/* cmd_ioc.h: `ward ioc`: import indicator feeds into the store, list and count them. */
#ifndef WARD_CLI_CMD_IOC_H
#define WARD_CLI_CMD_IOC_H

/* argv[0] is the subcommand ("import", "list", "stats", "lookup"). Returns the process exit
 * status: 0 success, 1 failure (a feed was rejected, a hash not found), 2 usage. */
int cmd_ioc(int argc, char **argv, const char *state_dir);
#endif
