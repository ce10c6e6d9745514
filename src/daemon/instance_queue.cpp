#include "instance_queue.hpp"

#include <utility>

namespace overlay::daemon {

InstanceQueue::InstanceQueue(std::size_t max_workers)
    : max_workers_(max_workers == 0 ? 1 : max_workers) {}

InstanceQueue::~InstanceQueue() {
    stop();
}

void InstanceQueue::submit(std::string key, Job job) {
    std::unique_lock lock(mutex_);
    if (stopping_) {
        lock.unlock();
        job.cancel();
        return;
    }
    queued_.push_back({std::move(key), std::move(job)});
    // Threads are started on demand so that an idle daemon holds none
    // beyond those a past burst needed.
    // Woken idle workers have not yet dequeued their job: compare with the
    // whole queue, or a burst would run on fewer threads than allowed.
    if (queued_.size() > idle_workers_ && workers_.size() < max_workers_) {
        workers_.emplace_back([this] { worker(); });
    }
    wake_.notify_all();
}

std::list<InstanceQueue::Entry>::iterator InstanceQueue::next_runnable() {
    for (auto it = queued_.begin(); it != queued_.end(); ++it) {
        if (it->key.empty() || !running_keys_.contains(it->key)) {
            return it;
        }
    }
    return queued_.end();
}

void InstanceQueue::worker() {
    std::unique_lock lock(mutex_);
    for (;;) {
        auto it = next_runnable();
        if (it == queued_.end()) {
            if (stopping_) {
                return;
            }
            ++idle_workers_;
            wake_.wait(lock);
            --idle_workers_;
            continue;
        }
        Entry entry = std::move(*it);
        queued_.erase(it);
        if (!entry.key.empty()) {
            running_keys_.insert(entry.key);
        }
        lock.unlock();
        try {
            entry.job.run();
        } catch (...) {
            // Jobs report their own failures; nothing may kill a worker.
        }
        entry.job = {};
        lock.lock();
        if (!entry.key.empty()) {
            running_keys_.erase(entry.key);
        }
        // The next job of this key may now run on any idle worker.
        wake_.notify_all();
    }
}

void InstanceQueue::cancel_queued() {
    std::list<Entry> cancelled;
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
        cancelled.swap(queued_);
        wake_.notify_all();
    }
    for (auto& entry : cancelled) {
        try {
            entry.job.cancel();
        } catch (...) {
        }
    }
}

void InstanceQueue::stop() {
    cancel_queued();
    std::vector<std::thread> workers;
    {
        std::lock_guard lock(mutex_);
        workers.swap(workers_);
    }
    for (auto& t : workers) {
        t.join();
    }
}

} // namespace overlay::daemon
