/* vecscan.c: the CLI's entry point (the commands live in the vecscan_cli library). */
#include <signal.h>

#include "cli.h"

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    return cli_main(argc, argv);
}
