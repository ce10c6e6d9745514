#include "read_at_most.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <unistd.h>

namespace overlay {

std::string read_at_most(int fd, std::size_t limit, ErrorCode code, const std::string& context) {
    std::string text;
    // Files under /proc hand out a few pages per read; only 0 means the end.
    // Read into a buffer of our own and append what came: growing the
    // string by a chunk per read would zero-fill memory the read overwrites
    // (this runs for every mount-table read).
    std::array<char, 64 * 1024> chunk;
    while (text.size() <= limit) {
        const std::size_t want = std::min(chunk.size(), limit + 1 - text.size());
        const ssize_t n = ::read(fd, chunk.data(), want);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw_errno(code, context + ": cannot read", errno);
        }
        if (n == 0) {
            break;
        }
        text.append(chunk.data(), static_cast<std::size_t>(n));
    }
    return text;
}

} // namespace overlay
