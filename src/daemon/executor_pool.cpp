#include "executor_pool.hpp"

#include "dbus_errors.hpp"
#include "error.hpp"

namespace overlay::daemon {

namespace {

ExecutorOutcome stopping() {
    return protocol::ExecutorFailure{ErrorCode::Failed, kStoppingMessage};
}

} // namespace

std::vector<std::unique_ptr<Executor>> ExecutorPool::make(const Options& options, std::size_t n,
                                                          std::chrono::milliseconds timeout,
                                                          bool migrate) {
    std::vector<std::unique_ptr<Executor>> out;
    for (std::size_t i = 0; i < n; ++i) {
        Executor::Options o;
        o.executor_path = options.executor_path;
        o.config_path = options.config_path;
        o.migrate = migrate;
        out.push_back(std::make_unique<Executor>(std::move(o)));
        out.back()->set_timeout(timeout);
    }
    return out;
}

ExecutorPool::ExecutorPool(const Options& options, WatchWorker& watch)
    : watch_(watch),
      operation_executors_(make(options, options.operation_executors, options.timeout, false)),
      status_executors_(make(options, 1, options.timeout, false)),
      migrate_executors_(make(options, options.migrate_executors, options.migrate_timeout, true)),
      operations_(
          operation_executors_.size(),
          [this](std::size_t i) { operation_executors_[i]->ensure_started(); },
          [this](std::size_t i) { operation_executors_[i]->check_alive(); }),
      status_(
          1, [this](std::size_t i) { status_executors_[i]->ensure_started(); },
          [this](std::size_t i) { status_executors_[i]->check_alive(); }),
      migrations_(
          migrate_executors_.size(),
          [this](std::size_t i) { migrate_executors_[i]->ensure_started(); },
          [this](std::size_t i) { migrate_executors_[i]->check_alive(); }) {}

ExecutorPool::~ExecutorPool() {
    stop();
}

void ExecutorPool::submit(protocol::Request request, Done done) {
    auto shared_done = std::make_shared<Done>(std::move(done));
    auto cancel = [shared_done] { (*shared_done)(stopping()); };
    using vocabulary::Verb;
    if (request.verb == Verb::Status || request.verb == Verb::List) {
        status_.submit({},
                       InstanceQueue::Job{[this, request, shared_done](std::size_t i) {
                                              (*shared_done)(status_executors_[i]->run(request));
                                          },
                                          cancel});
        return;
    }
    if (request.verb == Verb::Migrate) {
        submit_migration(std::move(request), shared_done);
        return;
    }
    std::string key = request.instance;
    operations_.submit(
        std::move(key),
        InstanceQueue::Job{
            [this, request, shared_done](std::size_t i) {
                auto outcome =
                    std::make_shared<ExecutorOutcome>(operation_executors_[i]->run(request));
                const bool mounts_changed =
                    request.verb && vocabulary::verb_info(*request.verb).changes_mounts;
                const bool ok = std::holds_alternative<protocol::ExecutorResult>(*outcome);
                if (!ok || !mounts_changed) {
                    (*shared_done)(std::move(*outcome));
                    return;
                }
                // The mount table changed: its report (and so
                // the signal) before the answer.
                watch_.sync([shared_done, outcome] { (*shared_done)(std::move(*outcome)); });
            },
            cancel});
}

void ExecutorPool::submit_migration(protocol::Request request, const std::shared_ptr<Done>& done) {
    const std::size_t limit = migrate_executors_.size();
    {
        const std::lock_guard lock(migrations_mutex_);
        if (migrations_admitted_ >= limit) {
            (*done)(protocol::ExecutorFailure{
                ErrorCode::Busy,
                instance_context(request.instance) + "migrate: " + std::to_string(limit) +
                    (limit == 1 ? " migration is" : " migrations are") +
                    " running already, the most at once (MigrateExecutors); try again when one "
                    "has finished"});
            return;
        }
        ++migrations_admitted_;
    }
    // Admitted: one executor is free for it (or will be once a finished
    // job's worker picks it up), so it waits for no other conversion.
    auto release = std::make_shared<std::function<void()>>([this] {
        const std::lock_guard lock(migrations_mutex_);
        --migrations_admitted_;
    });
    std::string key = request.instance;
    migrations_.submit(std::move(key),
                       InstanceQueue::Job{[this, request, done, release](std::size_t i) {
                                              auto outcome = migrate_executors_[i]->run(request);
                                              (*release)();
                                              (*done)(std::move(outcome));
                                          },
                                          [done, release] {
                                              (*release)();
                                              (*done)(stopping());
                                          }});
}

void ExecutorPool::cancel_queued() {
    operations_.cancel_queued();
    status_.cancel_queued();
    migrations_.cancel_queued();
}

void ExecutorPool::stop() {
    operations_.stop();
    status_.stop();
    migrations_.stop();
    for (auto& e : operation_executors_) {
        e->stop();
    }
    for (auto& e : status_executors_) {
        e->stop();
    }
    for (auto& e : migrate_executors_) {
        e->stop();
    }
}

} // namespace overlay::daemon
