// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Multicall
/// @notice Many view calls in one eth_call, with the `aggregate3` interface that Multicall3 (deployed at
/// 0xcA11bde05977b3631167028862bE2a173976CA11 on Base, Ethereum and most EVM chains) offers. warden places
/// this contract at that address on the devnet, so the devnet reads membership the way a real chain does.
contract Multicall {
    struct Call3 {
        address target;
        bool allowFailure;
        bytes callData;
    }

    struct Result {
        bool success;
        bytes returnData;
    }

    /// @notice Call each target in turn; a failed call reverts the whole batch unless it allows failure.
    function aggregate3(Call3[] calldata calls) public payable returns (Result[] memory returnData) {
        uint256 count = calls.length;
        returnData = new Result[](count);
        for (uint256 i = 0; i < count; ++i) {
            Call3 calldata item = calls[i];
            (bool ok, bytes memory data) = item.target.call(item.callData);
            if (!ok && !item.allowFailure) {
                revert("Multicall: call failed");
            }
            returnData[i] = Result(ok, data);
        }
    }
}
