// The thread that owns the watching executor (left4me-overlay --serve
// --watch). While idle it waits on the executor's socket for reports of
// changed mount state, whoever changed it; sync() asks the executor to
// report every change up to now, then calls back, so a Mount's reply can
// follow its MountChanged signal. The watching executor reads only the
// mount table, never a file under Root, so nothing a user arranges there
// can stall it.
#pragma once

#include "executor.hpp"
#include "unique_fd.hpp"

#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace overlay::daemon {

class WatchWorker {
  public:
    explicit WatchWorker(Executor::Options options);
    ~WatchWorker(); // stop()
    WatchWorker(const WatchWorker&) = delete;
    WatchWorker& operator=(const WatchWorker&) = delete;

    // Any thread. done runs on the worker thread, after every report the
    // executor sent before its answer; or, when stopping, at once.
    void sync(std::function<void()> done);

    // Answers what is queued, stops the executor, joins the thread.
    void stop();

  private:
    void loop();
    void wake();

    Executor executor_;
    UniqueFd wake_fd_;
    std::mutex mutex_;
    std::deque<std::function<void()>> syncs_;
    bool stopping_ = false;
    std::thread thread_;
};

} // namespace overlay::daemon
