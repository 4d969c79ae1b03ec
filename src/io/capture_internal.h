// Between the capture-format implementations; not part of the module's interface.
#pragma once

#include "io/capture.h"

namespace palisade::io {

Result<std::unique_ptr<PacketReader>> openLibpcap(const std::string& path);
Result<std::unique_ptr<PacketWriter>> createLibpcap(const std::string& path,
                                                    const std::vector<InterfaceInfo>& interfaces);
Result<std::unique_ptr<PacketWriter>> createPcapng(const std::string& path,
                                                   std::vector<InterfaceInfo> interfaces);

}  // namespace palisade::io
