#include "instance_queue.hpp"

#include <chrono>
#include <utility>

namespace overlay::daemon {

InstanceQueue::InstanceQueue(std::size_t workers, std::function<void(std::size_t)> on_start,
                             std::function<void(std::size_t)> on_idle,
                             std::chrono::milliseconds idle_check)
    : on_start_(std::move(on_start)), on_idle_(std::move(on_idle)), idle_check_(idle_check) {
    workers = workers == 0 ? 1 : workers;
    for (std::size_t i = 0; i < workers; ++i) {
        workers_.emplace_back([this, i] { worker(i); });
    }
}

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
    // A job whose key is running is started by the worker running it, once
    // that one ends: only a job that can start now needs a worker woken.
    const bool can_start = key.empty() || !running_keys_.contains(key);
    queued_.push_back({std::move(key), std::move(job)});
    if (can_start && waiting_ > 0) {
        wake_.notify_one();
    }
}

std::list<InstanceQueue::Entry>::iterator InstanceQueue::next_runnable() {
    for (auto it = queued_.begin(); it != queued_.end(); ++it) {
        if (it->key.empty() || !running_keys_.contains(it->key)) {
            return it;
        }
    }
    return queued_.end();
}

void InstanceQueue::worker(std::size_t index) {
    if (on_start_) {
        try {
            on_start_(index);
        } catch (...) {
        }
    }
    std::unique_lock lock(mutex_);
    for (;;) {
        auto it = next_runnable();
        if (it == queued_.end()) {
            if (stopping_) {
                return;
            }
            ++waiting_;
            const auto woken = wake_.wait_for(lock, idle_check_);
            --waiting_;
            if (woken == std::cv_status::timeout && on_idle_) {
                lock.unlock();
                try {
                    on_idle_(index);
                } catch (...) {
                }
                lock.lock();
            }
            continue;
        }
        Entry entry = std::move(*it);
        queued_.erase(it);
        if (!entry.key.empty()) {
            running_keys_.insert(entry.key);
        }
        // One more job can start (several were submitted while this worker
        // was on its way): the next waiting worker takes it.
        if (waiting_ > 0 && next_runnable() != queued_.end()) {
            wake_.notify_one();
        }
        lock.unlock();
        try {
            entry.job.run(index);
        } catch (...) {
            // Jobs report their own failures; nothing may kill a worker.
        }
        entry.job = {};
        lock.lock();
        if (!entry.key.empty()) {
            running_keys_.erase(entry.key);
        }
        // The next job of this key, if any, is this worker's: it looks for
        // one before waiting (and wakes another when more can start).
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
