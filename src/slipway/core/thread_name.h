// Names the calling thread, one of the server's background workers (the access log writer, the
// drift worker), so that `top -H`, `ps -L` and debuggers tell it from the request threads; and
// lets such a worker give way to the request threads when the cores are busy; and spreads the
// request threads over per-thread queues and counters.
//
// Thread safety: affects only the calling thread.
#pragma once

#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <string>

namespace slipway::core {

// `name` is cut to the 15 characters Linux keeps.
inline void NameThisThread(const std::string& name) {
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
}

// Lowers the calling thread's scheduling priority (Linux keeps a nice value per thread) to
// kBackgroundNice. On busy cores the scheduler then gives the request threads the CPU first and
// this thread the time they leave (idle moments, about a tenth of a core while every core is
// taken); on idle cores it runs as before. For workers off the request path whose queues absorb
// a delay: the access log writer and the drift worker. Best effort: a refusal changes nothing.
inline void LowerThisThreadPriority() {
  constexpr int kBackgroundNice = 10;
  const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
  const int current = ::getpriority(PRIO_PROCESS, tid);
  if (current < kBackgroundNice) ::setpriority(PRIO_PROCESS, tid, kBackgroundNice);
}

// Which of `shards` per-thread queues or counters the calling thread keeps to: threads take
// consecutive numbers when they first ask, so up to `shards` threads never share one. (The
// number is the thread's own, the same whichever `shards` it is asked with.)
inline size_t ThisThreadShard(size_t shards) {
  static std::atomic<size_t> next{0};
  thread_local const size_t mine = next.fetch_add(1, std::memory_order_relaxed);
  return mine % shards;
}

}  // namespace slipway::core
