/* cmd_scan.h: `ward scan`: judge files and directory trees on demand with the same
 * scanner the exec guard uses (YARA rules, a sha256 block list), in parallel, printing
 * each match as a text line or a JSON line. */
#ifndef WARD_CLI_CMD_SCAN_H
#define WARD_CLI_CMD_SCAN_H

/* ward scan [--json] [--rules FILE|DIR]... [--hashes FILE]... [--threads N]
 *           [--max-size BYTES] PATH...
 * argv[0] is the subcommand name ("scan"), options follow (main calls
 * cmd_scan(argc - 1, argv + 1)). Matches go to stdout, diagnostics to stderr, and a
 * progress line to stderr when it is a terminal. A --hashes file holds one sha256 in hex
 * per line, optionally followed by whitespace and a source name; '#' starts a comment.
 * Returns the exit status: 0 nothing found, 1 something found, 2 usage or setup error,
 * or some file could not be read and nothing was found. Symbolic links inside trees are
 * not followed (a PATH that is itself a link is). */
int cmd_scan(int argc, char **argv);
#endif
