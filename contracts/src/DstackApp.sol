// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Initializable} from "@openzeppelin/contracts-upgradeable/proxy/utils/Initializable.sol";
import {Ownable2StepUpgradeable} from "@openzeppelin/contracts-upgradeable/access/Ownable2StepUpgradeable.sol";
import {UUPSUpgradeable} from "@openzeppelin/contracts-upgradeable/proxy/utils/UUPSUpgradeable.sol";
import {ERC165Upgradeable} from "@openzeppelin/contracts-upgradeable/utils/introspection/ERC165Upgradeable.sol";
import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";

import {IAppAuth} from "./IAppAuth.sol";
import {IAppAuthBasicManagement} from "./IAppAuthBasicManagement.sol";

/// @title DstackApp
/// @notice Per-application boot policy: which compose hashes may run, on which
///         devices, and whether the platform TCB must be fully patched.
/// @dev Deployed behind an ERC1967 proxy (UUPS). The owner can freeze the
///      implementation for good with {disableUpgrades}, which lets users trust
///      the policy without trusting future owner-driven upgrades.
contract DstackApp is
    Initializable,
    Ownable2StepUpgradeable,
    UUPSUpgradeable,
    ERC165Upgradeable,
    IAppAuth,
    IAppAuthBasicManagement
{
    // Storage layout: the order below is frozen. New state goes directly above
    // `__gap` and shrinks it accordingly. OpenZeppelin parents keep their
    // state in ERC-7201 namespaces, so they do not occupy these slots.

    /// @notice Compose hashes that are allowed to boot.
    mapping(bytes32 => bool) public allowedComposeHashes;

    // Set once, never cleared: there is no path back to upgradeable.
    bool private _upgradesDisabled;

    /// @notice When true the device allow-list is ignored.
    bool public allowAnyDevice;

    /// @notice Devices that are allowed to boot this app.
    mapping(bytes32 => bool) public allowedDeviceIds;

    /// @notice When true only instances reporting TCB status "UpToDate" may boot.
    bool public requireTcbUpToDate;

    event UpgradesDisabled();
    event AllowAnyDeviceSet(bool allowAny);
    event RequireTcbUpToDateSet(bool requireUpToDate);

    /// @notice Uniform audit record emitted next to every specific event, so a
    ///         single log filter is enough to replay the whole policy history.
    /// @dev `policy` is keccak256 of the policy name; `value` is the affected
    ///      item (zero for boolean switches, left-padded for addresses).
    event PolicyChanged(address indexed actor, bytes32 indexed policy, bytes32 indexed value, bool enabled);

    bytes32 private constant POLICY_DEVICE = keccak256("device");
    bytes32 private constant POLICY_COMPOSE_HASH = keccak256("compose-hash");
    bytes32 private constant POLICY_ALLOW_ANY_DEVICE = keccak256("allow-any-device");
    bytes32 private constant POLICY_REQUIRE_TCB = keccak256("require-tcb-up-to-date");
    bytes32 private constant POLICY_UPGRADES_DISABLED = keccak256("upgrades-disabled");
    bytes32 private constant POLICY_IMPLEMENTATION_UPGRADE = keccak256("implementation-upgrade");

    bytes32 private constant TCB_UP_TO_DATE = keccak256("UpToDate");

    /// @custom:oz-upgrades-unsafe-allow constructor
    constructor() {
        // The implementation itself must never be initialized; only proxies are.
        _disableInitializers();
    }

    /// @notice Initializer kept for callers that predate the TCB flag; the
    ///         flag stays off.
    function initialize(
        address initialOwner,
        bool _disableUpgrades,
        bool _allowAnyDevice,
        bytes32 initialDeviceId,
        bytes32 initialComposeHash
    ) public initializer {
        _setUp(initialOwner, _disableUpgrades, false, _allowAnyDevice, initialDeviceId, initialComposeHash);
    }

    /// @notice Full initializer.
    function initialize(
        address initialOwner,
        bool _disableUpgrades,
        bool _requireTcbUpToDate,
        bool _allowAnyDevice,
        bytes32 initialDeviceId,
        bytes32 initialComposeHash
    ) public initializer {
        _setUp(initialOwner, _disableUpgrades, _requireTcbUpToDate, _allowAnyDevice, initialDeviceId, initialComposeHash);
    }

    function _setUp(
        address initialOwner,
        bool _disableUpgrades,
        bool _requireTcbUpToDate,
        bool _allowAnyDevice,
        bytes32 initialDeviceId,
        bytes32 initialComposeHash
    ) private {
        // Checked here rather than relying on Ownable's custom error so the
        // revert carries a readable reason string.
        require(initialOwner != address(0), "invalid owner address");

        __Ownable_init(initialOwner);
        __Ownable2Step_init();
        __ERC165_init();

        _upgradesDisabled = _disableUpgrades;
        requireTcbUpToDate = _requireTcbUpToDate;
        allowAnyDevice = _allowAnyDevice;

        // Zero means "none supplied", not a real identifier.
        if (initialDeviceId != bytes32(0)) {
            allowedDeviceIds[initialDeviceId] = true;
            emit DeviceAdded(initialDeviceId);
            _policy(POLICY_DEVICE, initialDeviceId, true);
        }
        if (initialComposeHash != bytes32(0)) {
            allowedComposeHashes[initialComposeHash] = true;
            emit ComposeHashAdded(initialComposeHash);
            _policy(POLICY_COMPOSE_HASH, initialComposeHash, true);
        }
    }

    /// @notice Implementation revision, bumped by every upgrade.
    function version() public pure virtual returns (uint256) {
        return 2;
    }

    /// @notice True once {disableUpgrades} has been called (or the proxy was
    ///         initialized with upgrades disabled).
    function upgradesDisabled() external view returns (bool) {
        return _upgradesDisabled;
    }

    /// @inheritdoc IERC165
    function supportsInterface(bytes4 interfaceId)
        public
        view
        virtual
        override(ERC165Upgradeable, IERC165)
        returns (bool)
    {
        return interfaceId == type(IAppAuth).interfaceId
            || interfaceId == type(IAppAuthBasicManagement).interfaceId || super.supportsInterface(interfaceId);
    }

    // ---------------------------------------------------------------- policy

    function addComposeHash(bytes32 composeHash) external onlyOwner {
        allowedComposeHashes[composeHash] = true;
        emit ComposeHashAdded(composeHash);
        _policy(POLICY_COMPOSE_HASH, composeHash, true);
    }

    function removeComposeHash(bytes32 composeHash) external onlyOwner {
        allowedComposeHashes[composeHash] = false;
        emit ComposeHashRemoved(composeHash);
        _policy(POLICY_COMPOSE_HASH, composeHash, false);
    }

    function addDevice(bytes32 deviceId) external onlyOwner {
        allowedDeviceIds[deviceId] = true;
        emit DeviceAdded(deviceId);
        _policy(POLICY_DEVICE, deviceId, true);
    }

    function removeDevice(bytes32 deviceId) external onlyOwner {
        allowedDeviceIds[deviceId] = false;
        emit DeviceRemoved(deviceId);
        _policy(POLICY_DEVICE, deviceId, false);
    }

    function setAllowAnyDevice(bool _allowAnyDevice) external onlyOwner {
        allowAnyDevice = _allowAnyDevice;
        emit AllowAnyDeviceSet(_allowAnyDevice);
        _policy(POLICY_ALLOW_ANY_DEVICE, bytes32(0), _allowAnyDevice);
    }

    function setRequireTcbUpToDate(bool _requireUpToDate) external onlyOwner {
        requireTcbUpToDate = _requireUpToDate;
        emit RequireTcbUpToDateSet(_requireUpToDate);
        _policy(POLICY_REQUIRE_TCB, bytes32(0), _requireUpToDate);
    }

    /// @notice Make the current implementation final. Irreversible.
    function disableUpgrades() external onlyOwner {
        _upgradesDisabled = true;
        emit UpgradesDisabled();
        _policy(POLICY_UPGRADES_DISABLED, bytes32(0), true);
    }

    // ------------------------------------------------------------- decision

    /// @inheritdoc IAppAuth
    /// @dev Checks run cheapest-to-explain first; the first failure wins so the
    ///      reason string always names a single cause.
    function isAppAllowed(AppBootInfo calldata bootInfo)
        external
        view
        override
        returns (bool isAllowed, string memory reason)
    {
        if (requireTcbUpToDate && keccak256(bytes(bootInfo.tcbStatus)) != TCB_UP_TO_DATE) {
            return (false, "TCB status is not up to date");
        }
        if (!allowedComposeHashes[bootInfo.composeHash]) {
            return (false, "Compose hash not allowed");
        }
        if (!allowAnyDevice && !allowedDeviceIds[bootInfo.deviceId]) {
            return (false, "Device not allowed");
        }
        return (true, "");
    }

    // -------------------------------------------------------------- internal

    function _authorizeUpgrade(address newImplementation) internal override onlyOwner {
        require(!_upgradesDisabled, "Upgrades are permanently disabled");
        _policy(POLICY_IMPLEMENTATION_UPGRADE, bytes32(uint256(uint160(newImplementation))), true);
    }

    function _policy(bytes32 policy, bytes32 value, bool enabled) internal {
        emit PolicyChanged(msg.sender, policy, value, enabled);
    }

    // Reserved slots so later revisions can add state without shifting
    // anything a derived contract may have appended.
    uint256[49] private __gap;
}
