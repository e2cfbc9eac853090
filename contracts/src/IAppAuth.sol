// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";

/// @title IAppAuth
/// @notice Boot-time authorization hook consulted by the KMS before it hands
///         keys to a confidential VM.
/// @dev ERC-165 id: 0x1e079198 (the selector of `isAppAllowed`). The struct
///      layout is part of the ABI the KMS encodes, so field order must not
///      change.
interface IAppAuth is IERC165 {
    /// @notice Measurements and identity reported by a booting instance.
    struct AppBootInfo {
        address appId;
        bytes32 composeHash;
        address instanceId;
        bytes32 deviceId;
        bytes32 mrAggregated;
        bytes32 mrSystem;
        bytes32 osImageHash;
        string tcbStatus;
        string[] advisoryIds;
    }

    /// @notice Decide whether the described instance may boot.
    /// @return isAllowed True when every policy check passes.
    /// @return reason Empty when allowed, otherwise why the boot was refused.
    function isAppAllowed(AppBootInfo calldata bootInfo) external view returns (bool isAllowed, string memory reason);
}
