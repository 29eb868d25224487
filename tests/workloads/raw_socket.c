/* Opens one raw ICMP socket: exactly one CAP_NET_RAW check (inet_create).
 * Exits 0 when the socket opened, 1 when it was refused. */
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void) {
  int fd = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
  if (fd < 0) {
    perror("socket(AF_INET, SOCK_RAW)");
    return 1;
  }
  close(fd);
  return 0;
}
