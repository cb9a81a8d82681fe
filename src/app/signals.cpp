#include "app/signals.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <utility>

namespace outbox::app {

Signals::Signals(int signal_fd, std::function<void()> on_reload, std::function<void()> on_stop)
    : fd_(signal_fd), on_reload_(std::move(on_reload)), on_stop_(std::move(on_stop)) {}

void Signals::check() {
    signalfd_siginfo info{};
    while (::read(fd_, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
        if (info.ssi_signo == SIGHUP) {
            on_reload_();
            continue;
        }
        if (stopping_) {
            spdlog::warn("second signal ({}): exiting at once without waiting for Kafka",
                         strsignal(static_cast<int>(info.ssi_signo)));
            std::_Exit(130);
        }
        spdlog::info("{}: finishing the current transaction, waiting for Kafka, confirming, then exiting",
                     strsignal(static_cast<int>(info.ssi_signo)));
        stopping_ = true;
        on_stop_();
    }
}

}  // namespace outbox::app
