// The daemon's privileged executors, each a persistent left4me-overlay
// --serve process driven by one thread: a pool for Mount and Unmount (one
// operation per instance at a time, different instances in parallel), one
// for GetStatus and ListInstances (never queued behind a mount), one for
// Migrate, and the watching executor, synced after each mount change so
// that its MountChanged goes out before the reply.
//
// Migrate walks and verifies a whole upper: minutes, or hours for a large
// one. It never holds an executor Mount, Unmount or a query needs: its own
// executors have their own time limit, and a Migrate arriving while all of
// them are taken is refused at once (Busy), as udisks refuses a job on a
// busy device, rather than queued: a queued conversion would spend the
// caller's wait behind another one it cannot see. A Mount or Unmount of
// an instance being migrated meets the instance lock and is refused (Busy)
// at once, never queued behind the conversion.
#pragma once

#include "executor.hpp"
#include "instance_queue.hpp"
#include "watch_worker.hpp"

#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace overlay::daemon {

class ExecutorPool {
  public:
    struct Options {
        std::string executor_path;
        std::string config_path;
        unsigned operation_executors = 2;
        std::chrono::milliseconds timeout{std::chrono::seconds(120)};
        unsigned migrate_executors = 2;
        std::chrono::milliseconds migrate_timeout{std::chrono::hours(6)};
    };

    // Starts the executors (each on its own thread, at once).
    ExecutorPool(const Options& options, WatchWorker& watch);
    ~ExecutorPool(); // stop()
    ExecutorPool(const ExecutorPool&) = delete;
    ExecutorPool& operator=(const ExecutorPool&) = delete;

    using Done = std::function<void(ExecutorOutcome)>;
    // Any thread; done runs on a worker thread, exactly once (with Failed
    // "service is stopping" when the pool stops before the request ran).
    void submit(protocol::Request request, Done done);

    // Requests not yet started end with "service is stopping"; new ones
    // are refused the same way; running ones finish.
    void cancel_queued();
    // cancel_queued(), wait for the running requests, stop the executors.
    void stop();

  private:
    static std::vector<std::unique_ptr<Executor>>
    make(const Options& options, std::size_t n, std::chrono::milliseconds timeout, bool migrate);
    void submit_migration(protocol::Request request, const std::shared_ptr<Done>& done);

    WatchWorker& watch_;
    std::vector<std::unique_ptr<Executor>> operation_executors_;
    std::vector<std::unique_ptr<Executor>> status_executors_;
    std::vector<std::unique_ptr<Executor>> migrate_executors_;
    InstanceQueue operations_;
    InstanceQueue status_;
    InstanceQueue migrations_;
    std::mutex migrations_mutex_;
    std::size_t migrations_admitted_ = 0; // running or about to, at most migrate_executors_.size()
};

} // namespace overlay::daemon
