// Shared by the unit and root tiers: one way to expect a core refusal.
#pragma once

#include "error.hpp"

#include <functional>
#include <gtest/gtest.h>
#include <string>

namespace l4m_test {

// Asserts that fn throws overlay::Error with `code` and a message
// containing `fragment`.
inline ::testing::AssertionResult throws_error(const std::function<void()>& fn,
                                               overlay::ErrorCode code,
                                               const std::string& fragment) {
    try {
        fn();
    } catch (const overlay::Error& e) {
        if (e.code() != code) {
            return ::testing::AssertionFailure()
                   << "got " << overlay::error_name(e.code()) << " (" << e.what() << "), want "
                   << overlay::error_name(code);
        }
        if (std::string(e.what()).find(fragment) == std::string::npos) {
            return ::testing::AssertionFailure()
                   << "message '" << e.what() << "' lacks '" << fragment << "'";
        }
        return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "nothing thrown, want " << overlay::error_name(code);
}

} // namespace l4m_test
