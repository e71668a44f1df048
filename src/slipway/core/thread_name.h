// Names the calling thread, one of the server's background workers (the access log writer, the
// drift worker), so that `top -H`, `ps -L` and debuggers tell it from the request threads.
//
// Thread safety: affects only the calling thread.
#pragma once

#include <pthread.h>

#include <string>

namespace slipway::core {

// `name` is cut to the 15 characters Linux keeps.
inline void NameThisThread(const std::string& name) {
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
}

}  // namespace slipway::core
