// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";

/// @title IAppAuthBasicManagement
/// @notice Minimal allow-list management surface that tooling can rely on.
/// @dev ERC-165 id: 0x8fd37527. Event parameters are deliberately not indexed
///      so that existing log decoders keep working.
interface IAppAuthBasicManagement is IERC165 {
    event ComposeHashAdded(bytes32 composeHash);
    event ComposeHashRemoved(bytes32 composeHash);
    event DeviceAdded(bytes32 deviceId);
    event DeviceRemoved(bytes32 deviceId);

    /// @notice Allow instances running this compose hash. Must emit ComposeHashAdded.
    function addComposeHash(bytes32 composeHash) external;

    /// @notice Stop allowing this compose hash. Must emit ComposeHashRemoved.
    function removeComposeHash(bytes32 composeHash) external;

    /// @notice Allow instances on this device. Must emit DeviceAdded.
    function addDevice(bytes32 deviceId) external;

    /// @notice Stop allowing this device. Must emit DeviceRemoved.
    function removeDevice(bytes32 deviceId) external;
}
