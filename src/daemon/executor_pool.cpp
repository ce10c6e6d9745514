#include "executor_pool.hpp"

namespace overlay::daemon {

namespace {

HelperOutcome stopping() {
    return protocol::HelperFailure{ErrorCode::Failed, "service is stopping"};
}

} // namespace

std::vector<std::unique_ptr<Executor>> ExecutorPool::make(const Options& options, std::size_t n) {
    std::vector<std::unique_ptr<Executor>> out;
    for (std::size_t i = 0; i < n; ++i) {
        Executor::Options o;
        o.helper_path = options.helper_path;
        o.config_path = options.config_path;
        out.push_back(std::make_unique<Executor>(std::move(o)));
        out.back()->set_timeout(options.timeout);
    }
    return out;
}

ExecutorPool::ExecutorPool(const Options& options, WatchWorker& watch)
    : watch_(watch), operation_executors_(make(options, options.operation_executors)),
      status_executors_(make(options, 1)),
      operations_(
          operation_executors_.size(),
          [this](std::size_t i) { operation_executors_[i]->ensure_started(); },
          [this](std::size_t i) { operation_executors_[i]->check_alive(); }),
      status_(
          1, [this](std::size_t i) { status_executors_[i]->ensure_started(); },
          [this](std::size_t i) { status_executors_[i]->check_alive(); }) {}

ExecutorPool::~ExecutorPool() {
    stop();
}

void ExecutorPool::submit(protocol::Request request, Done done) {
    auto shared_done = std::make_shared<Done>(std::move(done));
    auto cancel = [shared_done] { (*shared_done)(stopping()); };
    using protocol::RequestVerb;
    if (request.verb == RequestVerb::Status || request.verb == RequestVerb::List) {
        status_.submit({}, InstanceQueue::Job{[this, request, shared_done](std::size_t i) {
                                                  (*shared_done)(
                                                      status_executors_[i]->run(request));
                                              },
                                              cancel});
        return;
    }
    std::string key = request.instance;
    operations_.submit(
        std::move(key),
        InstanceQueue::Job{[this, request, shared_done](std::size_t i) {
                               auto outcome = std::make_shared<HelperOutcome>(
                                   operation_executors_[i]->run(request));
                               const bool mounts_changed =
                                   request.verb == RequestVerb::Mount ||
                                   request.verb == RequestVerb::Unmount;
                               const bool ok =
                                   std::holds_alternative<protocol::HelperResult>(*outcome);
                               if (!ok || !mounts_changed) {
                                   (*shared_done)(std::move(*outcome));
                                   return;
                               }
                               // The mount table changed: its report (and so
                               // the signal) before the answer.
                               watch_.sync([shared_done, outcome] {
                                   (*shared_done)(std::move(*outcome));
                               });
                           },
                           cancel});
}

void ExecutorPool::cancel_queued() {
    operations_.cancel_queued();
    status_.cancel_queued();
}

void ExecutorPool::stop() {
    operations_.stop();
    status_.stop();
    for (auto& e : operation_executors_) {
        e->stop();
    }
    for (auto& e : status_executors_) {
        e->stop();
    }
}

} // namespace overlay::daemon
