// Runs jobs on a bounded set of worker threads, one job per key at a time:
// operations on one instance are serialized (in arrival order), different
// instances run in parallel, and however many calls arrive, at most
// max_workers helpers exist at once.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <list>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace overlay::daemon {

class InstanceQueue {
  public:
    struct Job {
        std::function<void()> run;    // on a worker thread
        std::function<void()> cancel; // instead of run, when stopped first
    };

    explicit InstanceQueue(std::size_t max_workers);
    ~InstanceQueue(); // stop()
    InstanceQueue(const InstanceQueue&) = delete;
    InstanceQueue& operator=(const InstanceQueue&) = delete;

    // An empty key serializes with nothing (ListInstances).
    void submit(std::string key, Job job);

    // Cancels every job not yet started (cancel() runs on the calling
    // thread) and refuses new ones; running jobs finish.
    void cancel_queued();

    // cancel_queued(), then waits for the running jobs and joins the workers.
    void stop();

  private:
    struct Entry {
        std::string key;
        Job job;
    };

    void worker();
    // First queued entry whose key is free; end() if none. Lock held.
    std::list<Entry>::iterator next_runnable();

    const std::size_t max_workers_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::list<Entry> queued_;
    std::set<std::string> running_keys_;
    std::vector<std::thread> workers_;
    std::size_t idle_workers_ = 0;
    bool stopping_ = false;
};

} // namespace overlay::daemon
