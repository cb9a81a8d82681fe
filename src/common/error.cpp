#include "common/error.h"

namespace outbox {

std::string_view to_string(ErrorKind kind) noexcept {
    switch (kind) {
        case ErrorKind::Transient: return "transient";
        case ErrorKind::Protocol: return "protocol";
        case ErrorKind::Config: return "config";
        case ErrorKind::Fatal: return "fatal";
    }
    return "unknown";
}

int exit_code(ErrorKind kind) noexcept {
    switch (kind) {
        case ErrorKind::Transient: return 69;  // EX_UNAVAILABLE
        case ErrorKind::Protocol: return 76;   // EX_PROTOCOL
        case ErrorKind::Config: return 78;     // EX_CONFIG
        case ErrorKind::Fatal: return 70;      // EX_SOFTWARE
    }
    return 1;
}

}  // namespace outbox
