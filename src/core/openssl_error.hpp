#pragma once
// openssl_error(): the oldest error on this thread's OpenSSL error queue as text (for
// start-up and load messages), clearing the queue so the next failure is reported on its own.
#include <string>

namespace portcullis {

std::string openssl_error();

}  // namespace portcullis
