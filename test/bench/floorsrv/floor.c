/*
 * The floor server of union9p's bench (test/bench/floor.go): the least a
 * 9P server must do for a null request over a unix socket, to measure how
 * close union9p is to it. One thread per connection; per read(2) of
 * requests, the host call each needs (fstatfs(2) of argv[2] for Tstatfs)
 * and one write(2) of the answers. Knows Tversion (echoed), Tattach (a
 * zero qid), Tstatfs, Tclunk; anything else gets ENOSYS.
 *
 * usage: floor SOCKET DIR
 */
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/statfs.h>
static int dirfd;

static void *serve(void *arg) {
	int fd = (int)(intptr_t)arg;
	static __thread unsigned char in[1<<17], out[1<<16];
	size_t have = 0;
	for (;;) {
		ssize_t n = read(fd, in + have, sizeof in - have);
		if (n <= 0) break;
		have += n;
		size_t o = 0, off = 0;
		while (have - off >= 7) {
			uint32_t size; memcpy(&size, in + off, 4);
			if (size < 7 || size > sizeof in) goto done;
			if (have - off < size) break;
			unsigned char typ = in[off+4]; size_t start = o;
			memcpy(out + o + 4, in + off + 4, 3); out[o+4] = typ + 1; o += 7;
			if (typ == 100) { memcpy(out + o, in + off + 7, size - 7); o += size - 7; }
			else if (typ == 104) { memset(out + o, 0, 13); o += 13; }
			else if (typ == 8) { struct statfs s; fstatfs(dirfd, &s); memset(out + o, 0, 60); memcpy(out + o + 4, &s.f_bsize, 4); o += 60; }
			else if (typ == 120) {}
			else { out[start+4] = 7; uint32_t e = 38; memcpy(out + o, &e, 4); o += 4; }
			uint32_t rs = o - start; memcpy(out + start, &rs, 4);
			off += size;
		}
		memmove(in, in + off, have - off); have -= off;
		if (o && write(fd, out, o) != (ssize_t)o) break;
	}
done:
	close(fd);
	return 0;
}

int main(int argc, char **argv) {
	if (argc != 3) return 2;
	dirfd = open(argv[2], O_RDONLY|O_DIRECTORY);
	int ls = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	strncpy(a.sun_path, argv[1], sizeof a.sun_path - 1);
	unlink(argv[1]);
	if (bind(ls, (void*)&a, sizeof a) || listen(ls, 64)) return 1;
	for (;;) {
		int fd = accept(ls, 0, 0);
		if (fd < 0) continue;
		pthread_t t;
		if (pthread_create(&t, 0, serve, (void *)(intptr_t)fd)) { close(fd); continue; }
		pthread_detach(t);
	}
}
