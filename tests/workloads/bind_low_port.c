/* Binds a TCP socket to a port below net.ipv4.ip_unprivileged_port_start
 * (one CAP_NET_BIND_SERVICE check). Tries ports downwards from 1023 until
 * one is free. Exits 0 when bound, 1 when refused (EACCES/EPERM). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void) {
  for (int port = 1023; port > 512; port--) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
      perror("socket");
      return 2;
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = bind(fd, (struct sockaddr*)&a, sizeof a);
    int err = errno;
    close(fd);
    if (rc == 0) return 0;
    if (err == EACCES || err == EPERM) {
      fprintf(stderr, "bind 127.0.0.1:%d: %s\n", port, strerror(err));
      return 1;
    }
  }
  fprintf(stderr, "no free port below 1024\n");
  return 2;
}
