// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {DstackApp} from "../src/DstackApp.sol";

/// @dev Test-only upgrade target: identical storage, bumped version, so tests
///      can observe that an upgrade took effect.
contract DstackAppNext is DstackApp {
    function version() public pure override returns (uint256) {
        return 3;
    }
}
