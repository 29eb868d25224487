/* One CAP_SETGID check (as root: setgid to its own gid asks for it), then
 * exit. Copied thousands of times, each copy a binary of its own. */
#include <unistd.h>

int main(void) { return setgid(getgid()) == 0 ? 0 : 1; }
