// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {DstackKms} from "../src/DstackKms.sol";

/// @dev Test-only upgrade target: identical storage plus one new view, so
///      tests can observe that an upgrade took effect.
contract DstackKmsNext is DstackKms {
    function nextVersion() external pure returns (uint256) {
        return 2;
    }
}
