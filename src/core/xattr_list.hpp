// Reading listxattr(2)'s answer, one way for the taint scan and migrate.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <linux/limits.h>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace overlay {

// listxattr(2) allocates a kernel buffer of the size it is given (up to
// XATTR_LIST_MAX, 64 KiB) on every call: asking with the full size each
// time made that allocation most of a walk's cost. Nearly every list fits
// kSmallXattrList; ERANGE means this one did not, and it is asked again with
// the full size. `list(char*, size_t)` is the listxattr call; `buf` is the
// caller's, kept across calls. Returns its length, or -1 with errno set.
inline constexpr std::size_t kSmallXattrList = 1024;
template <typename List> ssize_t list_xattr_names(std::vector<char>& buf, List list) {
    if (buf.size() < kSmallXattrList) {
        buf.resize(kSmallXattrList);
    }
    ssize_t len = list(buf.data(), kSmallXattrList);
    if (len < 0 && errno == ERANGE) {
        if (buf.size() < XATTR_LIST_MAX) {
            buf.resize(XATTR_LIST_MAX);
        }
        len = list(buf.data(), buf.size());
    }
    return len;
}

// Calls `each(std::string_view name)` for every name of a list of `len`
// bytes that list_xattr_names() read into `buf`.
template <typename Each>
void for_each_xattr_name(const std::vector<char>& buf, std::size_t len, Each each) {
    std::string_view all(buf.data(), std::min(len, buf.size()));
    while (!all.empty()) {
        const auto end = all.find('\0');
        each(all.substr(0, end));
        if (end == std::string_view::npos) {
            break;
        }
        all.remove_prefix(end + 1);
    }
}

} // namespace overlay
