// The Linux side of scripts/bench-vs-linux.sh: the same lifecycle as the
// loopback teardown benchmark -- connect, a small HTTP request, a 64-byte
// response, the server closes first -- on the kernel's TCP over loopback.
// One epoll server thread and one epoll client thread (pinned to CPUs 1 and
// 0, like tcpterm's terminator and generator), `conc` connections in flight.
//
//   linux_lifecycle SECONDS [CONCURRENCY]   -> prints "linux_cps=N completed=M failed=F"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

namespace {
std::atomic<bool> stop{false};
std::atomic<uint64_t> completed{0}, failed{0};
const char kRequest[] = "GET / HTTP/1.1\r\nHost: tcpterm\r\nConnection: close\r\n\r\n";
std::string response;
uint16_t port = 0;

void pin(int cpu) {
  cpu_set_t s;
  CPU_ZERO(&s);
  CPU_SET(cpu, &s);
  pthread_setaffinity_np(pthread_self(), sizeof s, &s);
}

void server(int lfd) {
  pin(1);
  int ep = epoll_create1(0);
  epoll_event ev{EPOLLIN, {.fd = lfd}};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  epoll_event evs[256];
  char buf[4096];
  while (!stop) {
    int n = epoll_wait(ep, evs, 256, 50);
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == lfd) {
        for (;;) {
          int c = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK);
          if (c < 0) break;
          epoll_event ce{EPOLLIN, {.fd = c}};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
        }
        continue;
      }
      ssize_t r = read(fd, buf, sizeof buf);
      if (r > 0 && memmem(buf, size_t(r), "\r\n\r\n", 4)) {
        (void)!write(fd, response.data(), response.size());
        close(fd);  // the server closes first: TIME-WAIT on the server side
      } else if (r == 0 || (r < 0 && errno != EAGAIN)) {
        close(fd);
      }
    }
  }
  close(ep);
}

void client(int conc) {
  pin(0);
  int ep = epoll_create1(0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  auto open_one = [&]() {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) {
      failed++;
      return;
    }
    int r = connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    if (r < 0 && errno != EINPROGRESS) {
      failed++;
      close(fd);
      return;
    }
    epoll_event ev{EPOLLOUT, {.fd = fd}};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  };
  for (int i = 0; i < conc; i++) open_one();
  epoll_event evs[256];
  char buf[4096];
  while (!stop) {
    int n = epoll_wait(ep, evs, 256, 50);
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (evs[i].events & EPOLLOUT) {
        int err = 0;
        socklen_t l = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) {
          failed++;
          close(fd);
          open_one();
          continue;
        }
        (void)!write(fd, kRequest, sizeof kRequest - 1);
        epoll_event ev{EPOLLIN, {.fd = fd}};
        epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
        continue;
      }
      ssize_t r;
      while ((r = read(fd, buf, sizeof buf)) > 0) {
      }
      if (r == 0) {
        completed++;
        close(fd);  // after the server's FIN: the client is the passive closer
        open_one();
      } else if (errno != EAGAIN) {
        failed++;
        close(fd);
        open_one();
      }
    }
  }
  close(ep);
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s SECONDS [CONCURRENCY]\n", argv[0]);
    return 2;
  }
  int secs = std::atoi(argv[1]);
  int conc = argc > 2 ? std::atoi(argv[2]) : 256;
  response = "HTTP/1.1 200 OK\r\nServer: linux\r\nContent-Type: text/plain\r\nContent-Length: 64\r\n"
             "Connection: close\r\n\r\n" + std::string(64, 'x');
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0 || listen(lfd, 4096) < 0) {
    std::perror("bind/listen");
    return 1;
  }
  socklen_t l = sizeof sa;
  getsockname(lfd, reinterpret_cast<sockaddr*>(&sa), &l);
  port = ntohs(sa.sin_port);
  std::thread s(server, lfd), c(client, conc);
  auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(secs));
  uint64_t done = completed;
  double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  stop = true;
  s.join();
  c.join();
  std::printf("linux_cps=%.0f completed=%llu failed=%llu\n", double(done) / el, (unsigned long long)done,
              (unsigned long long)failed.load());
  return 0;
}
