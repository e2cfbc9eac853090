// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

// Pulled into the build only so that an ERC1967Proxy artifact is emitted:
// off-chain tooling deploys an implementation and then a proxy pointing at it
// with the initializer calldata.
import {ERC1967Proxy} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Proxy.sol";
