#include "support/test_pki.h"

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "support/process.h"

namespace fs = std::filesystem;

namespace outbox::test {
namespace {

void openssl(std::vector<std::string> args) {
    args.insert(args.begin(), "openssl");
    std::string output;
    const int rc = run_command(SpawnOptions{.argv = args, .stderr_path = "=stdout"}, &output);
    if (rc != 0) {
        std::string command;
        for (const auto& a : args) command += (command.empty() ? "" : " ") + a;
        throw std::runtime_error(command + " failed (exit " + std::to_string(rc) + "): " + output);
    }
}

const std::vector<std::string> kNewKey = {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                                          "-nodes"};

// A self-signed CA: <dir>/<name>.crt and <name>.key.
void make_ca(const std::string& dir, const std::string& name, const std::string& cn) {
    std::vector<std::string> args = {"req", "-x509", "-new"};
    args.insert(args.end(), kNewKey.begin(), kNewKey.end());
    args.insert(args.end(), {"-keyout", dir + "/" + name + ".key", "-out", dir + "/" + name + ".crt", "-days",
                             "2", "-subj", "/CN=" + cn, "-addext", "basicConstraints=critical,CA:TRUE",
                             "-addext", "keyUsage=critical,keyCertSign,cRLSign"});
    openssl(args);
}

// A leaf certificate <dir>/<name>.crt (key <name>.key) with `extensions`, signed by <dir>/ca.
void make_leaf(const std::string& dir, const std::string& name, const std::string& cn,
               const std::string& extensions, int serial) {
    const std::string base = dir + "/" + name;
    std::vector<std::string> req = {"req", "-new"};
    req.insert(req.end(), kNewKey.begin(), kNewKey.end());
    req.insert(req.end(), {"-keyout", base + ".key", "-out", base + ".csr", "-subj", "/CN=" + cn});
    openssl(req);
    std::ofstream(base + ".ext") << "basicConstraints=CA:FALSE\n" << extensions;
    openssl({"x509", "-req", "-in", base + ".csr", "-CA", dir + "/ca.crt", "-CAkey", dir + "/ca.key",
             "-set_serial", std::to_string(serial), "-days", "2", "-out", base + ".crt", "-extfile",
             base + ".ext"});
    fs::permissions(base + ".key", fs::perms::owner_read | fs::perms::owner_write);
}

}  // namespace

TestPki make_test_pki(const std::string& dir, const std::string& client_cn) {
    fs::create_directories(dir);
    make_ca(dir, "ca", "outbox-relay test CA");
    make_ca(dir, "other-ca", "some other CA");
    make_leaf(dir, "server", "127.0.0.1",
              "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n", 2);
    make_leaf(dir, "client", client_cn, "extendedKeyUsage=clientAuth\n", 3);
    return TestPki{.ca_cert = dir + "/ca.crt",
                   .server_cert = dir + "/server.crt",
                   .server_key = dir + "/server.key",
                   .client_cert = dir + "/client.crt",
                   .client_key = dir + "/client.key",
                   .other_ca_cert = dir + "/other-ca.crt"};
}

}  // namespace outbox::test
