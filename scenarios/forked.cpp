// Jobs in forked child processes. See forked.h.
#include "scenarios/forked.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <string>

namespace hmmsim::scenario {

namespace {

/// Runs job i in a forked child; returns the read end of the pipe its result comes through.
int forkJob(std::size_t i, const std::function<nlohmann::json(std::size_t)>& job, pid_t& pid) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  std::cout.flush();
  std::cerr.flush();
  pid = fork();
  if (pid == 0) {
    close(fds[0]);
    const std::string text = job(i).dump();
    std::size_t done = 0;
    while (done < text.size()) {
      const ssize_t n = write(fds[1], text.data() + done, text.size() - done);
      if (n <= 0) _exit(3);
      done += std::size_t(n);
    }
    _exit(0);
  }
  close(fds[1]);
  if (pid < 0) {
    close(fds[0]);
    return -1;
  }
  return fds[0];
}

nlohmann::json collect(int fd, pid_t pid) {
  std::string text;
  char buf[65536];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) text.append(buf, std::size_t(n));
  close(fd);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || text.empty())
    return nlohmann::json{{"crashed", true}};
  return nlohmann::json::parse(text);
}

}  // namespace

std::vector<nlohmann::json> runForked(std::size_t jobs, const std::function<nlohmann::json(std::size_t)>& job,
                                      unsigned parallel) {
  parallel = std::max(1u, parallel);
  std::vector<nlohmann::json> results(jobs);
  std::vector<std::pair<int, pid_t>> running(jobs, {-1, 0});
  std::size_t next = 0;
  for (std::size_t i = 0; i < jobs; ++i) {
    while (next < jobs && next < i + parallel) {
      running[next].first = forkJob(next, job, running[next].second);
      ++next;
    }
    results[i] = running[i].first < 0 ? nlohmann::json{{"crashed", true}}
                                      : collect(running[i].first, running[i].second);
  }
  return results;
}

}  // namespace hmmsim::scenario
