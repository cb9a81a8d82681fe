// Keeps outbox_app a valid library while src/app/ holds only main().
namespace outbox::app {
int placeholder_symbol = 0;
}  // namespace outbox::app
