#include "config/enum_names.h"

namespace outbox::config {

std::string_view to_string(Source value) noexcept {
    return enum_name(value);
}

std::string_view to_string(AfterPublish value) noexcept {
    return enum_name(value);
}

std::string_view to_string(OnInvalid value) noexcept {
    return enum_name(value);
}

std::string_view to_string(SlotFailover value) noexcept {
    return enum_name(value);
}

std::string_view to_string(OperationPolicy value) noexcept {
    return enum_name(value);
}

std::string_view to_string(TimestampSource value) noexcept {
    return enum_name(value);
}

std::string_view to_string(LogLevel value) noexcept {
    return enum_name(value);
}

std::string_view to_string(LogFormat value) noexcept {
    return enum_name(value);
}

}  // namespace outbox::config
