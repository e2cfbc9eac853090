// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Initializable} from "@openzeppelin/contracts-upgradeable/proxy/utils/Initializable.sol";
import {Ownable2StepUpgradeable} from "@openzeppelin/contracts-upgradeable/access/Ownable2StepUpgradeable.sol";
import {UUPSUpgradeable} from "@openzeppelin/contracts-upgradeable/proxy/utils/UUPSUpgradeable.sol";
import {ERC165Upgradeable} from "@openzeppelin/contracts-upgradeable/utils/introspection/ERC165Upgradeable.sol";
import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";
import {ERC1967Proxy} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Proxy.sol";

import {IAppAuth} from "./IAppAuth.sol";

/// @title DstackKms
/// @notice Root of trust for a KMS deployment: records the KMS identity, which
///         OS images / measurements / devices the KMS itself may run on, and
///         which app contracts are known. App boot decisions are delegated to
///         each registered app's own {IAppAuth} contract after the KMS-wide
///         OS image check.
/// @dev Deployed behind an ERC1967 proxy (UUPS); upgrades are owner-only.
contract DstackKms is Initializable, Ownable2StepUpgradeable, UUPSUpgradeable, ERC165Upgradeable, IAppAuth {
    /// @notice Public identity material of the KMS.
    struct KmsInfo {
        bytes k256Pubkey;
        bytes caPubkey;
        bytes quote;
        bytes eventlog;
    }

    // Storage layout: the order below is frozen. New state goes directly above
    // `__gap` and shrinks it accordingly.

    KmsInfo public kmsInfo;

    /// @notice App id of the gateway that fronts the apps of this KMS.
    string public gatewayAppId;

    /// @notice Apps known to this KMS. Registration alone grants nothing.
    mapping(address => bool) public registeredApps;

    /// @notice Aggregated measurements a KMS instance may boot with.
    mapping(bytes32 => bool) public kmsAllowedAggregatedMrs;

    /// @notice Devices a KMS instance may boot on.
    mapping(bytes32 => bool) public kmsAllowedDeviceIds;

    /// @notice OS images allowed for both the KMS and the apps it serves.
    mapping(bytes32 => bool) public allowedOsImages;

    /// @notice Implementation that {deployAndRegisterApp} puts behind new proxies.
    address public appImplementation;

    // Address parameters are left unindexed to keep the established log shape.
    event AppRegistered(address appId);
    event KmsInfoSet(bytes k256Pubkey);
    event KmsAggregatedMrAdded(bytes32 mrAggregated);
    event KmsAggregatedMrRemoved(bytes32 mrAggregated);
    event KmsDeviceAdded(bytes32 deviceId);
    event KmsDeviceRemoved(bytes32 deviceId);
    event OsImageHashAdded(bytes32 osImageHash);
    event OsImageHashRemoved(bytes32 osImageHash);
    event GatewayAppIdSet(string gatewayAppId);
    event AppImplementationSet(address implementation);
    event AppDeployedViaFactory(address indexed appId, address indexed deployer);

    /// @notice Uniform audit record emitted next to every specific event.
    /// @dev `policy` is keccak256 of the policy name; `value` is the affected
    ///      bytes32, a left-padded address, or the hash of dynamic data.
    event PolicyChanged(address indexed actor, bytes32 indexed policy, bytes32 indexed value, bool enabled);

    bytes32 private constant POLICY_KMS_INFO = keccak256("kms-info");
    bytes32 private constant POLICY_GATEWAY_APP_ID = keccak256("gateway-app-id");
    bytes32 private constant POLICY_REGISTERED_APP = keccak256("registered-app");
    bytes32 private constant POLICY_APP_IMPLEMENTATION = keccak256("app-implementation");
    bytes32 private constant POLICY_KMS_AGGREGATED_MR = keccak256("kms-aggregated-mr");
    bytes32 private constant POLICY_KMS_DEVICE = keccak256("kms-device");
    bytes32 private constant POLICY_OS_IMAGE = keccak256("os-image");
    bytes32 private constant POLICY_IMPLEMENTATION_UPGRADE = keccak256("implementation-upgrade");

    bytes32 private constant TCB_UP_TO_DATE = keccak256("UpToDate");

    // The six-argument DstackApp initializer. Spelled out because the
    // overloaded name cannot be resolved by abi.encodeCall.
    bytes4 private constant APP_INITIALIZE_SELECTOR =
        bytes4(keccak256("initialize(address,bool,bool,bool,bytes32,bytes32)"));

    /// @custom:oz-upgrades-unsafe-allow constructor
    constructor() {
        // Only proxies get initialized, never the implementation itself.
        _disableInitializers();
    }

    /// @param _appImplementation May be zero; set it later with {setAppImplementation}.
    function initialize(address initialOwner, address _appImplementation) public initializer {
        __Ownable_init(initialOwner);
        __Ownable2Step_init();
        __ERC165_init();

        if (_appImplementation != address(0)) {
            _setAppImplementation(_appImplementation);
        }
    }

    /// @inheritdoc IERC165
    function supportsInterface(bytes4 interfaceId)
        public
        view
        virtual
        override(ERC165Upgradeable, IERC165)
        returns (bool)
    {
        return interfaceId == type(IAppAuth).interfaceId || super.supportsInterface(interfaceId);
    }

    // ------------------------------------------------------------- identity

    function setKmsInfo(KmsInfo memory info) external onlyOwner {
        kmsInfo = info;
        emit KmsInfoSet(info.k256Pubkey);
        _policy(POLICY_KMS_INFO, keccak256(info.k256Pubkey), true);
    }

    // Quote and event log are attestation evidence that gets refreshed
    // without changing the key, so no policy event is emitted.
    function setKmsQuote(bytes memory quote) external onlyOwner {
        kmsInfo.quote = quote;
    }

    function setKmsEventlog(bytes memory eventlog) external onlyOwner {
        kmsInfo.eventlog = eventlog;
    }

    function setGatewayAppId(string memory appId) external onlyOwner {
        gatewayAppId = appId;
        emit GatewayAppIdSet(appId);
        _policy(POLICY_GATEWAY_APP_ID, keccak256(bytes(appId)), true);
    }

    // ------------------------------------------------------------------ apps

    /// @notice Mark an address as an app of this KMS.
    /// @dev Open to anyone on purpose: being registered confers no right to
    ///      boot. The owner-controlled OS image list and the app's own
    ///      {IAppAuth-isAppAllowed} still decide every boot.
    function registerApp(address appId) public {
        require(appId != address(0), "Invalid app ID");
        registeredApps[appId] = true;
        emit AppRegistered(appId);
        _policy(POLICY_REGISTERED_APP, _addr(appId), true);
    }

    function setAppImplementation(address _implementation) external onlyOwner {
        require(_implementation != address(0), "Invalid implementation address");
        _setAppImplementation(_implementation);
    }

    /// @notice Deploy a proxied DstackApp from {appImplementation}, initialize
    ///         it and register it, all in one transaction.
    function deployAndRegisterApp(
        address initialOwner,
        bool disableUpgrades,
        bool requireTcbUpToDate,
        bool allowAnyDevice,
        bytes32 initialDeviceId,
        bytes32 initialComposeHash
    ) public returns (address appId) {
        address implementation = appImplementation;
        require(implementation != address(0), "DstackApp implementation not set");
        require(initialOwner != address(0), "Invalid owner address");

        bytes memory initData = abi.encodeWithSelector(
            APP_INITIALIZE_SELECTOR,
            initialOwner,
            disableUpgrades,
            requireTcbUpToDate,
            allowAnyDevice,
            initialDeviceId,
            initialComposeHash
        );
        // The proxy constructor delegatecalls into the implementation chosen
        // by the owner; trusting that code is part of trusting the owner.
        appId = address(new ERC1967Proxy(implementation, initData));
        registerApp(appId);
        emit AppDeployedViaFactory(appId, msg.sender);
    }

    /// @notice Factory variant for callers that predate the TCB flag (off).
    function deployAndRegisterApp(
        address initialOwner,
        bool disableUpgrades,
        bool allowAnyDevice,
        bytes32 initialDeviceId,
        bytes32 initialComposeHash
    ) external returns (address appId) {
        return deployAndRegisterApp(
            initialOwner, disableUpgrades, false, allowAnyDevice, initialDeviceId, initialComposeHash
        );
    }

    // ------------------------------------------------------ KMS allow-lists

    function addKmsAggregatedMr(bytes32 mrAggregated) external onlyOwner {
        kmsAllowedAggregatedMrs[mrAggregated] = true;
        emit KmsAggregatedMrAdded(mrAggregated);
        _policy(POLICY_KMS_AGGREGATED_MR, mrAggregated, true);
    }

    function removeKmsAggregatedMr(bytes32 mrAggregated) external onlyOwner {
        kmsAllowedAggregatedMrs[mrAggregated] = false;
        emit KmsAggregatedMrRemoved(mrAggregated);
        _policy(POLICY_KMS_AGGREGATED_MR, mrAggregated, false);
    }

    function addKmsDevice(bytes32 deviceId) external onlyOwner {
        kmsAllowedDeviceIds[deviceId] = true;
        emit KmsDeviceAdded(deviceId);
        _policy(POLICY_KMS_DEVICE, deviceId, true);
    }

    function removeKmsDevice(bytes32 deviceId) external onlyOwner {
        kmsAllowedDeviceIds[deviceId] = false;
        emit KmsDeviceRemoved(deviceId);
        _policy(POLICY_KMS_DEVICE, deviceId, false);
    }

    function addOsImageHash(bytes32 osImageHash) external onlyOwner {
        allowedOsImages[osImageHash] = true;
        emit OsImageHashAdded(osImageHash);
        _policy(POLICY_OS_IMAGE, osImageHash, true);
    }

    function removeOsImageHash(bytes32 osImageHash) external onlyOwner {
        allowedOsImages[osImageHash] = false;
        emit OsImageHashRemoved(osImageHash);
        _policy(POLICY_OS_IMAGE, osImageHash, false);
    }

    // ------------------------------------------------------------ decisions

    /// @notice Decide whether a KMS instance may boot. Unlike apps, the KMS
    ///         always requires a fully patched TCB.
    function isKmsAllowed(AppBootInfo calldata bootInfo) external view returns (bool isAllowed, string memory reason) {
        if (keccak256(bytes(bootInfo.tcbStatus)) != TCB_UP_TO_DATE) {
            return (false, "TCB status is not up to date");
        }
        if (!allowedOsImages[bootInfo.osImageHash]) {
            return (false, "OS image is not allowed");
        }
        if (!kmsAllowedAggregatedMrs[bootInfo.mrAggregated]) {
            return (false, "Aggregated MR not allowed");
        }
        if (!kmsAllowedDeviceIds[bootInfo.deviceId]) {
            return (false, "KMS is not allowed to boot on this device");
        }
        return (true, "");
    }

    /// @inheritdoc IAppAuth
    /// @dev KMS-wide checks first, then the app's own contract has the final say.
    function isAppAllowed(AppBootInfo calldata bootInfo)
        external
        view
        override
        returns (bool isAllowed, string memory reason)
    {
        if (!registeredApps[bootInfo.appId]) {
            return (false, "App not registered");
        }
        if (!allowedOsImages[bootInfo.osImageHash]) {
            return (false, "OS image is not allowed");
        }
        // Anyone may register any address, so it can be an EOA; calling it
        // would revert while decoding the empty return data.
        if (bootInfo.appId.code.length == 0) {
            return (false, "App not deployed or invalid address");
        }
        return IAppAuth(bootInfo.appId).isAppAllowed(bootInfo);
    }

    // -------------------------------------------------------------- internal

    function _authorizeUpgrade(address newImplementation) internal override onlyOwner {
        _policy(POLICY_IMPLEMENTATION_UPGRADE, _addr(newImplementation), true);
    }

    function _setAppImplementation(address implementation) private {
        appImplementation = implementation;
        emit AppImplementationSet(implementation);
        _policy(POLICY_APP_IMPLEMENTATION, _addr(implementation), true);
    }

    function _policy(bytes32 policy, bytes32 value, bool enabled) internal {
        emit PolicyChanged(msg.sender, policy, value, enabled);
    }

    function _addr(address a) private pure returns (bytes32) {
        return bytes32(uint256(uint160(a)));
    }

    // Reserved slots for state added by later revisions.
    uint256[50] private __gap;
}
