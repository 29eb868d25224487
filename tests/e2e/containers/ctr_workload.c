/* The program the container e2e tests run in their image, linked
 * statically (the image holds nothing else). One action per argument:
 *   chownmod  chown a new file to another user (CAP_CHOWN), then chmod it
 *             though not its owner (CAP_FOWNER)
 *   raw       open a raw ICMP socket (CAP_NET_RAW)
 *   none      print a line, nothing privileged
 * Exits 0 when the action was done, 1 when the kernel refused it. */
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "none";

	if (!strcmp(what, "chownmod")) {
		const char *f = "/tmp/owned";
		int fd = open(f, O_CREAT | O_WRONLY | O_TRUNC, 0600);

		if (fd < 0 || close(fd) != 0) {
			perror("open");
			return 1;
		}
		if (chown(f, 1234, 1234) != 0) {
			perror("chown");
			return 1;
		}
		if (chmod(f, 0644) != 0) {
			perror("chmod");
			return 1;
		}
		puts("chownmod ok");
		return 0;
	}
	if (!strcmp(what, "raw")) {
		int s = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);

		if (s < 0) {
			perror("socket");
			return 1;
		}
		close(s);
		puts("raw ok");
		return 0;
	}
	puts("none ok");
	return 0;
}
