#include "read_at_most.hpp"

#include <algorithm>
#include <cerrno>
#include <unistd.h>

namespace overlay {

std::string read_at_most(int fd, std::size_t limit, ErrorCode code, const std::string& context) {
    std::string text;
    // Files under /proc hand out a few pages per read; only 0 means the end.
    std::size_t chunk = 64 * 1024;
    while (text.size() <= limit) {
        const std::size_t used = text.size();
        text.resize(used + std::min(chunk, limit + 1 - used));
        const ssize_t n = ::read(fd, text.data() + used, text.size() - used);
        if (n < 0) {
            text.resize(used);
            if (errno == EINTR) {
                continue;
            }
            throw_errno(code, context + ": cannot read", errno);
        }
        text.resize(used + static_cast<std::size_t>(n));
        if (n == 0) {
            break;
        }
    }
    return text;
}

} // namespace overlay
