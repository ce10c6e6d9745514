// Runs jobs on a fixed set of worker threads, one job per key at a time:
// operations on one instance are serialized (in arrival order), different
// instances run in parallel on as many workers as there are executors. Each
// worker has an index, so that a job uses that worker's own executor.
// A worker is woken only when a job it can start is there, one worker per
// such job: every wake-up is a futex call and a context switch (a
// hypervisor trip on a paravirtualized guest), and waking every idle worker
// for each job, and again when one ends, made two that found nothing to do
// per Mount or Unmount with two executors.
#pragma once

#include <chrono>
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
        std::function<void(std::size_t worker)> run; // on that worker's thread
        std::function<void()> cancel;                // instead of run, when stopped first
    };

    // Starts `workers` threads; each calls on_start(its index) first, and
    // on_idle(its index) about once per idle_check while it has nothing to
    // do. (The tests make idle_check long: a waiting worker then looks at
    // the queue only when woken, so a missed wake-up shows as a job that
    // never starts instead of one that starts a second late.)
    InstanceQueue(std::size_t workers, std::function<void(std::size_t)> on_start = {},
                  std::function<void(std::size_t)> on_idle = {},
                  std::chrono::milliseconds idle_check = std::chrono::seconds(1));
    ~InstanceQueue(); // stop()
    InstanceQueue(const InstanceQueue&) = delete;
    InstanceQueue& operator=(const InstanceQueue&) = delete;

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

    void worker(std::size_t index);
    // First queued entry whose key is free; end() if none. Lock held.
    std::list<Entry>::iterator next_runnable();

    std::function<void(std::size_t)> on_start_;
    std::function<void(std::size_t)> on_idle_;
    std::chrono::milliseconds idle_check_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::list<Entry> queued_;
    std::set<std::string> running_keys_;
    std::size_t waiting_ = 0; // workers waiting for a job
    std::vector<std::thread> workers_;
    bool stopping_ = false;
};

} // namespace overlay::daemon
