// The daemon's privileged executors, each a persistent left4me-overlay
// --serve process driven by one thread: a pool for Mount, Unmount and
// Migrate (one operation per instance at a time, different instances in
// parallel), one for GetStatus and ListInstances (never queued behind a
// mount), and the watching executor, synced after each mount change so
// that its MountChanged goes out before the reply.
#pragma once

#include "executor.hpp"
#include "instance_queue.hpp"
#include "watch_worker.hpp"

#include <functional>
#include <memory>
#include <vector>

namespace overlay::daemon {

class ExecutorPool {
  public:
    struct Options {
        std::string helper_path;
        std::string config_path;
        unsigned operation_executors = 2;
        std::chrono::milliseconds timeout{std::chrono::seconds(120)};
    };

    // Starts the executors (each on its own thread, at once).
    ExecutorPool(const Options& options, WatchWorker& watch);
    ~ExecutorPool(); // stop()
    ExecutorPool(const ExecutorPool&) = delete;
    ExecutorPool& operator=(const ExecutorPool&) = delete;

    using Done = std::function<void(HelperOutcome)>;
    // Any thread; done runs on a worker thread, exactly once (with Failed
    // "service is stopping" when the pool stops before the request ran).
    void submit(protocol::Request request, Done done);

    // Requests not yet started end with "service is stopping"; new ones
    // are refused the same way; running ones finish.
    void cancel_queued();
    // cancel_queued(), wait for the running requests, stop the executors.
    void stop();

  private:
    static std::vector<std::unique_ptr<Executor>> make(const Options& options, std::size_t n);

    WatchWorker& watch_;
    std::vector<std::unique_ptr<Executor>> operation_executors_;
    std::vector<std::unique_ptr<Executor>> status_executors_;
    InstanceQueue operations_;
    InstanceQueue status_;
};

} // namespace overlay::daemon
